"""concurrency"""
