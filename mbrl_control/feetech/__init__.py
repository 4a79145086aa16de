"""Feetech STS/SCS bus servos (the SO-100/SO-101 arms): the control table, calibration,
a driver core on the Feetech SDK, and an emulated bus to test it without hardware."""
