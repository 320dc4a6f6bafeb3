"""The gateway's rules, pure (no I/O): keys, request decoding, results, rate limits, rejections."""
