"""``python -m audits.runs.schemas``: regenerate the published JSON Schemas from the models."""

from audits.runs.schemas import write_schemas

if __name__ == "__main__":
    for path in write_schemas():
        print(path)
