"""Flask extensions, created unbound and bound in `create_app`."""
from __future__ import annotations

from flask_cors import CORS
from flask_jwt_extended import JWTManager
from flask_sock import Sock

cors = CORS()
jwt = JWTManager()
sock = Sock()
