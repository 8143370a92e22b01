def main():
    raise SystemExit("not yet")


if __name__ == "__main__":
    main()
