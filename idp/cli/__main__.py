from idp.cli.main import app

app(prog_name="hoviyat")
