"""Command-line interface (typer + rich). Imports anything; nothing imports it."""
