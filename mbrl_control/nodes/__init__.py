"""ROS 2 adapters over the core: message conversion, parameter binding, nodes.

Only this package imports ROS message types and rclpy.
"""
