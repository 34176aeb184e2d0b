from capsight._cli.main import console

console()
