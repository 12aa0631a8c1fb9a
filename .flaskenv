# Read by `flask` (python-dotenv): the embedded development server listens on :8000.
FLASK_RUN_PORT=8000
