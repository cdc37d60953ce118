"""Lightning modules and the trainer set-up shared by every training stage."""
