from flask import Blueprint

bp = Blueprint("deliberation", __name__)
