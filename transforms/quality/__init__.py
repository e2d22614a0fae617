"""Data quality gates. ``gx_gate`` checks a day of silver with Great Expectations before gold is built."""
