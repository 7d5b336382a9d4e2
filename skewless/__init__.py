"""The application shell: settings, embedded services and the `skewless` CLI."""
