import importlib.util
import tempfile

import pandas as pd
from PIL import Image
from safetensors.torch import load_file
from torch.utils.data import Dataset

from audits import audit, load_run

# 1. A model folder on a frozen held-out set: the same run as `python -m audits run`.
result = audit(
    "fixtures/models/car-variants/1.1.0",
    "fixtures/data/heldout/manifest.csv",
    explain=False,  # Grad-CAM and the integrity checks run by default; off here for speed
    integrity=False,
)
print(f"accuracy {result.metrics.accuracy:.1%}")
print(result.per_class[["support", "recall", "ci_low", "ci_high"]])
print(result.confusion)

# 2. A model already in memory, on a torch Dataset yielding (PIL image, label).
spec = importlib.util.spec_from_file_location("net", "fixtures/models/car-variants/1.1.0/net.py")
net = importlib.util.module_from_spec(spec)
spec.loader.exec_module(net)
model = net.SmallCNN(num_classes=6)
model.load_state_dict(load_file("fixtures/models/car-variants/1.1.0/weights.safetensors"))

rows = pd.read_csv("fixtures/data/heldout/manifest.csv").head(120)


class HeldOut(Dataset):
    def __len__(self):
        return len(rows)

    def __getitem__(self, i):
        image = Image.open(f"fixtures/data/heldout/{rows.path[i]}").convert("RGB")
        return image, rows.label[i]  # a class name or its index


mine = audit(
    model,
    HeldOut(),
    classes=["carrera", "targa", "turbo", "gt", "cabriolet", "safari"],
    input_size=128,
    mean=[0.5, 0.5, 0.5],
    std=[0.25, 0.25, 0.25],
    name="my-cnn",
    version="dev",
    explain=False,
    integrity=False,
)
print(mine.predictions[["path", "label", "pred", "confidence"]].head())

# 3. Gate it against the released 1.0.0 on the same images, keep both runs, export one.
baseline = audit("fixtures/models/car-variants/1.0.0", HeldOut(), explain=False, integrity=False)
comparison = baseline.compare(mine)
print(comparison.verdict, "-", comparison.summary)

store = tempfile.mkdtemp()  # your audit store: the CLI and the dashboard read these runs
kept = [baseline.save(store), mine.save(store)]
print(load_run(kept[1]).metrics.accuracy == mine.metrics.accuracy)
print(mine.export(tempfile.mkdtemp(), formats=("json", "csv")))
