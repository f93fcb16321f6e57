"""Exports of ``posepipe.pose/2`` results to other formats."""
