"""nmt: GNMT-style LSTM neural machine translation."""
