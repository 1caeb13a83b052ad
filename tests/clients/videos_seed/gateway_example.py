import requests
import time
import json
import sys
API_BASE = "https://new.12ai.org"
API_KEY = "YOUR_API_KEY"
headers = {
    "Content-Type": "application/json",
    "Authorization": f"Bearer {API_KEY}"
}
# 测试图片
IMG1 = "https://example.com/image1.jpg"
IMG2 = "https://example.com/image2.jpg"
# 测试场景定义
TEST_CASES = {
    "1": {
        "name": "图生视频(单图作为首帧)",
        "payload": {
            "model": "veo-3.1-fast-generate-preview",
            "prompt": "让画面中的主体动起来,镜头缓慢推进,电影级画质",
            "images": [IMG1]
        }
    },
    "2": {
        "name": "帧插值(首尾帧生成中间过渡)",
        "payload": {
            "model": "veo-3.1-fast-generate-preview",
            "prompt": "平滑过渡,自然变化",
            "images": [IMG1, IMG2],
            "metadata": {"durationSeconds": 8}
        }
    },
    "3": {
        "name": "纯文生视频",
        "payload": {
            "model": "veo-3.1-fast-generate-preview",
            "prompt": "一只可爱的橘猫在花园里追逐蝴蝶,慢动作镜头"
        }
    },
    "4": {
        "name": "图生视频 + metadata参数",
        "payload": {
            "model": "veo-3.1-fast-generate-preview",
            "prompt": "让画面动起来,镜头缓慢推进",
            "images": [IMG1],
            "metadata": {
                "aspectRatio": "16:9",
                "durationSeconds": 6,
                "negativePrompt": "模糊,低质量,变形",
                "personGeneration": "allow_adult"
            }
        }
    },
    "5": {
        "name": "竖屏视频(9:16)",
        "payload": {
            "model": "veo-3.1-fast-generate-preview",
            "prompt": "一个人在城市街道上行走",
            "metadata": {"aspectRatio": "9:16", "durationSeconds": 4}
        }
    },
    "6": {
        "name": "文生视频 + 参考图片(仅标准版支持)",
        "payload": {
            "model": "veo-3.1-generate-preview",
            "prompt": "一只可爱的猫咪在花园里玩耍",
            "metadata": {
                "aspectRatio": "16:9",
                "durationSeconds": 8,
                "referenceImages": [
                    {"image": {"bytesBase64Encoded": IMG1}, "referenceType": "asset"},
                    {"image": {"bytesBase64Encoded": IMG2}, "referenceType": "asset"}
                ]
            }
        }
    }
}
# 选择测试场景
print("=" * 50)
print("Gemini Veo API 功能测试")
print("=" * 50)
for key, case in TEST_CASES.items():
    print(f" {key}. {case['name']}")
print("=" * 50)
choice = sys.argv[1] if len(sys.argv) > 1 else input("请选择测试场景 (1-6): ").strip()
if choice not in TEST_CASES:
    print(f"无效选择: {choice}")
    sys.exit(1)
selected = TEST_CASES[choice]
print(f"\n>>> 运行测试: {selected['name']}")
payload = selected["payload"]
print(f"请求参数:\n{json.dumps(payload, ensure_ascii=False, indent=2)}\n")
# 提交任务
response = requests.post(f"{API_BASE}/v1/videos", headers=headers, json=payload)
result = response.json()
print(f"API 返回: {json.dumps(result, ensure_ascii=False, indent=2)}")
# 检查错误
if "error" in result:
    print(f"请求失败: {result['error']}")
    sys.exit(1)
task_id = result.get("task_id")
if not task_id:
    print(f"未找到 task_id,完整响应: {result}")
    sys.exit(1)
print(f"任务已提交,task_id: {task_id}")
# 轮询查询状态
while True:
    response = requests.get(f"{API_BASE}/v1/videos/{task_id}", headers=headers)
    status = response.json()
    current_status = status.get('status', '')
    progress = status.get('progress', 'N/A')
    print(f"状态: {current_status}, 进度: {progress}")
    if current_status == "completed":
        video_url = f"{API_BASE}/v1/videos/{task_id}/content"
        print(f"视频生成成功!URL: {video_url}")
        break
    elif current_status == "failure":
        print(f"视频生成失败: {status.get('fail_reason', 'Unknown error')}")
        break
    time.sleep(5)
# 下载视频
if current_status == "completed":
    response = requests.get(video_url, headers=headers)
    with open("output_video.mp4", "wb") as f:
        f.write(response.content)
    print("视频已下载到 output_video.mp4")
