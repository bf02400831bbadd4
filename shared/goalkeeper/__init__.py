"""Goalkeeper: goal and conversion tracking for web sites and phone systems."""
