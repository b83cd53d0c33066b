"""Protocol limits both ends agree on; plain constants, so CLIs can show them without importing torch or grpc."""

# Pilot symbols a Sync may carry: about 1000 give an SNR estimate within ~0.2 dB.
MIN_PILOT_SYMBOLS = 16
MAX_PILOT_SYMBOLS = 65536
