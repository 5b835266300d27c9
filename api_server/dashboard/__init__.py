"""The operator dashboard's static files (``static/``), served at ``/dashboard`` (``routes/dashboard.py``)."""
