"""Exports of ``posepipe.pose/1`` results to other formats."""
