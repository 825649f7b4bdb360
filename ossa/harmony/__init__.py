"""harmony"""
