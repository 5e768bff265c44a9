"""The development extras, apart from the product: the local Slack (`bot.dev.sandbox`), the playground
(`bot.dev.playground`, `python -m bot dev`), the scripted OpenAI server (`bot.dev.fake_openai`) and the demo model
(`bot.dev.demo_model`). A production install runs without them; the playground needs `pip install '.[dev]'`."""
