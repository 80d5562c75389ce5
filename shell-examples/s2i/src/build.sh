# The application's "build": a file made by assemble, as the application's user.
printf 'built by uid %s\n' "$(id -u)" > "$HOME/build-info"
