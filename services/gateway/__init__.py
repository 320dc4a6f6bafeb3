"""The gateway: trusts send events over HTTPS (CloudEvents HTTP binding) and read rejections."""
