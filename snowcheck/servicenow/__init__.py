"""The ServiceNow layer: the only code that speaks HTTP to an instance."""
