"""The ``hoviyat`` command line."""
