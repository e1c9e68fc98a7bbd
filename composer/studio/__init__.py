"""`compose studio`: a local web page over the one generation path (``create_app``)."""
