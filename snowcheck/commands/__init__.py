"""The commands: one module per snowcheck command, each taking typed settings."""
