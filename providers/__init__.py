"""Provider adapters behind one contract (`providers.base`), and their emulators."""
