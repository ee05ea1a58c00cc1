"""The CLI's tasks as plain functions of a config (testable without a shell)."""
