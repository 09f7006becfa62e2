from gristmill.cli import app

app(prog_name="gristmill")
