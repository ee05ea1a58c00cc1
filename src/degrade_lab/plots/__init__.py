"""Figures people look at: degradation sample sheets and noise histograms (matplotlib, Agg)."""
