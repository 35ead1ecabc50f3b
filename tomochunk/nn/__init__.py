"""tomochunk.nn"""
