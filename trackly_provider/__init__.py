"""Apache Airflow provider for Trackly SMS."""

__version__ = "0.1.0"
