# The application: says who it runs as and what assemble left.
echo "hello from s2i, uid=$(id -u)"
cat "$HOME/build-info"
