"""tomochunk.metrics"""
