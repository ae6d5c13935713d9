from . import write_example

print(write_example())
