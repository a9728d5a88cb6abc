"""Built-in prompt formats, one `.jinja` file each (see composer.formats for the contract)."""
