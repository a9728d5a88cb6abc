"""Built-in source plugins. Each public module here is one plugin (see composer.plugins)."""
