// Runboard
