"""Output formats: the rich report, JSON, Nagios, the Prometheus textfile and the log file."""
