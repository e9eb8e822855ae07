"""Static HTML run reports (`reasonrl report RUN_DIR`); matplotlib is imported lazily."""
