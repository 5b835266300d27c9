"""What the three processes share: settings, the socket protocol, errors and logging."""
