"""Wire-faithful local servers of the YandexGPT and GigaChat HTTP APIs."""
