"""tomochunk.report"""
