"""gunicorn entry (`gunicorn wsgi:app`) and FLASK_APP: the only place the environment is read."""

import os

from geoservice import create_app
from geoservice.config import config_from_env

app = create_app(config_from_env(os.environ))
