"""DingTalk adapter: callback signing, the OpenAPI client and the Stream-mode client."""
