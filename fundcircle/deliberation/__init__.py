"""Deliberation: threaded comments, questions to applicants and their answers, moderation."""
