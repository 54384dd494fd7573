"""Secrets Manager rotation Lambdas: one module per rotated secret, on the shared four-step handler.

Each module's `handler(event, context)` is a Lambda entry point (`rotation.cache_token.handler`,
`rotation.origin_secret.handler`, `rotation.admin_token.handler`). They call control-plane APIs only
(Secrets Manager, ElastiCache, Elastic Load Balancing, CloudFront), so they run outside the VPC.
"""
