"""southbound"""
