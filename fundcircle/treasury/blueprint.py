from flask import Blueprint

bp = Blueprint("treasury", __name__)
