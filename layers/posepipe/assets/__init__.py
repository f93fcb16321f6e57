"""The files posepipe runs on: the pose model asset (found, built, verified) and the sample media."""
