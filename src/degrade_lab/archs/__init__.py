"""Networks only (plain nn.Modules): no losses, optimizers or logging."""
